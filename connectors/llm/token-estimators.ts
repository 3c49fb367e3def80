import tokenizers from '@anush008/tokenizers';
import type { LengthEstimator } from '../../processors/templating/length-estimators.ts';
/** Anything that can ask a server for a token count (the completions client, the synthesis pool). */
export interface TokenCounter {
  countTokens(text: string): Promise<number | undefined>;
}

/** The `tokens` estimator from a local Hugging Face tokenizer.json (the same Rust library as Python's tokenizers). */
export function localTokenizerEstimator(tokenizerJson: string): LengthEstimator {
  const tok = tokenizers.Tokenizer.fromFile(tokenizerJson);
  return async (text: string) => (await tok.encode(text, null, { addSpecialTokens: false })).getLength();
}

/** The `tokens` estimator from the LLM server's tokenize endpoint; fails clearly when the server has none. */
export async function serverTokenEstimator(client: TokenCounter): Promise<LengthEstimator> {
  const probe = await client.countTokens('probe');
  if (probe === undefined) throw new Error('--length-estimate tokens: the LLM server has no tokenize endpoint; pass --tokenizer FILE (a tokenizer.json) or use --length-estimate words');
  return async (text: string) => {
    const n = await client.countTokens(text);
    if (n === undefined) throw new Error('the LLM server stopped answering its tokenize endpoint');
    return n;
  };
}
