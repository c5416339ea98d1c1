-- Real ShareGPT lines (issue 15.6): {"conversations": [{"from", "value"}]}
-- with from = system | human | gpt. The type's comment promised ShareGPT for
-- `conversation`, whose lines are {"turns": [{"role", "content"}]}, while the
-- validator rejected real ShareGPT with LT230. ShareGPT is now its own
-- format; the validator maps human -> user, gpt -> assistant.

alter type public.dataset_format add value if not exists 'sharegpt' after 'conversation';
comment on type public.dataset_format is
  'Detected JSONL line format: chat ({"messages": [{"role", "content"}]}), conversation ({"conversation_id"?, "turns": [{"role", "content"}]}), sharegpt ({"conversations": [{"from": "system"|"human"|"gpt", "value"}]}), instruction ({"instruction", "input"?, "output"}), prompt_completion ({"prompt", "completion"}).';
