/**
 * Types for mistral-tokenizer-js 1.0.0, which ships none (Deno treats the
 * untyped package as `any`; tsc needs this declaration).
 */
declare module "mistral-tokenizer-js" {
  const mistralTokenizer: {
    encode(prompt: string, addBosToken?: boolean, addPrecedingSpace?: boolean): number[];
    decode(tokenIds: number[], addBosToken?: boolean, addPrecedingSpace?: boolean): string;
    vocabById: string[];
    vocabByString: Map<string, number>;
    merges: Map<string, number>;
  };
  export default mistralTokenizer;
}
