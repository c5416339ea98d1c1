/**
 * OpenAI's default epoch count for a fine-tuning dataset, exactly as its
 * cookbook computes it (examples/Chat_finetuning_data_prep.ipynb, "Pricing and
 * default n_epochs estimate"): aim for 3 epochs, but keep examples × epochs
 * between 100 and 25,000 and epochs between 1 and 25.
 *
 * Note the integer division in both branches (Python `//`): 30 examples give
 * 100 // 30 = 3 epochs (90 example passes, just under 100), not ceil(100/30).
 * The cookbook's own toy output confirms it (5 examples → 20 epochs).
 */

export const TARGET_EPOCHS = 3;
export const MIN_TARGET_EXAMPLES = 100;
export const MAX_TARGET_EXAMPLES = 25_000;
export const MIN_DEFAULT_EPOCHS = 1;
export const MAX_DEFAULT_EPOCHS = 25;

/** Recommended epochs for `examples` training examples; null when there are none. */
export function recommendedEpochs(examples: number): number | null {
  if (!Number.isInteger(examples) || examples <= 0) return null;
  if (examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) {
    return Math.min(MAX_DEFAULT_EPOCHS, Math.floor(MIN_TARGET_EXAMPLES / examples));
  }
  if (examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) {
    return Math.max(MIN_DEFAULT_EPOCHS, Math.floor(MAX_TARGET_EXAMPLES / examples));
  }
  return TARGET_EPOCHS;
}
