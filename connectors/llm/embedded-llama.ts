import { availableParallelism } from 'node:os';
import type { Llama, LlamaCompletion, LlamaContext, LlamaContextSequence, LlamaGrammar, LlamaModel, Token } from 'node-llama-cpp';
import { JobError } from '../../processors/runtime/job-error.ts';

type LlamaCpp = typeof import('node-llama-cpp');

/**
 * node-llama-cpp, loaded on first use: it is an optional dependency (its prebuilt llama.cpp binaries are some 700 MB),
 * so `import 'instruct-pt'` and every command but the embedded synthesizer's work without it.
 */
export async function loadLlamaCpp(): Promise<LlamaCpp> {
  try {
    return await import('node-llama-cpp');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes("'node-llama-cpp'")) {
      throw new JobError('the embedded synthesizer needs node-llama-cpp, an optional dependency that is not installed: run `npm install node-llama-cpp` (or install without --omit=optional); `ipt pipeline` and `ipt augment` can use any OpenAI-compatible server instead (--llm-url)');
    }
    throw err;
  }
}

export interface EmbeddedOptions {
  modelPath: string;
  /** Sequences decoding in parallel (one KV cache each). */
  parallel?: number;
  /** Tokens of context per sequence. */
  contextSize?: number;
  /** 'auto' uses CUDA (or Vulkan/Metal) when present; false forces the CPU. */
  gpu?: 'auto' | false;
  threads?: number;
}

export interface EmbeddedCompletion {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * A GGUF synthesizer in this process through node-llama-cpp (llama.cpp): several sequences decode in parallel,
 * batched together by llama.cpp. A request takes the free sequence whose KV cache shares the longest prefix with its
 * prompt, so multi-round prompts that share a few-shot history skip re-evaluating it.
 */
export class EmbeddedSynthesizer {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: ((s: LlamaContextSequence) => void)[] = [];
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  readonly parallel: number;
  prefixTokensReused = 0;
  promptTokensTotal = 0;

  private constructor(
    private readonly Completion: typeof LlamaCompletion,
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
  ) {
    this.parallel = context.totalSequences;
    this.free = Array.from({ length: context.totalSequences }, () => context.getSequence());
  }

  static async load(opts: EmbeddedOptions): Promise<EmbeddedSynthesizer> {
    // build: 'never' — use the prebuilt binaries installed from npm; nothing is downloaded or compiled at run time.
    const { getLlama, LlamaCompletion } = await loadLlamaCpp();
    const llama = await getLlama({ gpu: opts.gpu ?? 'auto', build: 'never' });
    const model = await llama.loadModel({ modelPath: opts.modelPath });
    // llama.cpp's own default counts the host's cores; in a container limited to fewer it oversubscribes badly
    // (measured here: 205 s instead of 1.2 s for 64 tokens), so default to the cores this process may run on.
    const threads = opts.threads ?? availableParallelism();
    const context = await model.createContext({ sequences: opts.parallel ?? 4, contextSize: opts.contextSize ?? 4096, threads });
    return new EmbeddedSynthesizer(LlamaCompletion, llama, model, context);
  }

  get gpu(): string | false {
    return this.llama.gpu;
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  tokenize(text: string): Token[] {
    return this.model.tokenize(text);
  }

  get busy(): number {
    return this.parallel - this.free.length;
  }

  private acquire(prompt: readonly Token[]): Promise<LlamaContextSequence> {
    if (this.free.length === 0) return new Promise((r) => this.waiters.push(r));
    let best = 0;
    let bestLen = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = commonPrefix(this.free[i]!.contextTokens, prompt);
      if (len > bestLen) {
        best = i;
        bestLen = len;
      }
    }
    return Promise.resolve(this.free.splice(best, 1)[0]!);
  }

  private release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next) next(seq);
    else this.free.push(seq);
  }

  private grammar(gbnf: string): Promise<LlamaGrammar> {
    let g = this.grammars.get(gbnf);
    if (!g) {
      g = this.llama.createGrammar({ grammar: gbnf });
      this.grammars.set(gbnf, g);
      g.catch(() => this.grammars.delete(gbnf));
    }
    return g;
  }

  async complete(req: { prompt: string; maxTokens: number; temperature: number; grammar?: string; stop?: string[]; repeatPenalty?: number; signal?: AbortSignal }): Promise<EmbeddedCompletion> {
    const tokens = this.model.tokenize(req.prompt);
    if (tokens.length + req.maxTokens > this.contextSize) {
      throw new RangeError(`prompt of ${tokens.length} tokens + max_tokens ${req.maxTokens} exceeds the context of ${this.contextSize} tokens`);
    }
    const grammar = req.grammar ? await this.grammar(req.grammar) : undefined;
    const seq = await this.acquire(tokens);
    try {
      this.prefixTokensReused += commonPrefix(seq.contextTokens, tokens);
      this.promptTokensTotal += tokens.length;
      const completion = new this.Completion({ contextSequence: seq, autoDisposeSequence: false });
      let completionTokens = 0;
      const res = await completion.generateCompletionWithMeta(tokens, {
        maxTokens: req.maxTokens,
        temperature: req.temperature,
        grammar,
        customStopTriggers: req.stop,
        repeatPenalty: req.repeatPenalty && req.repeatPenalty !== 1 ? { penalty: req.repeatPenalty } : false,
        signal: req.signal,
        stopOnAbortSignal: false,
        onToken: (t) => (completionTokens += t.length),
      });
      completion.dispose();
      return { text: res.response, finishReason: res.metadata.stopReason === 'maxTokens' ? 'length' : 'stop', promptTokens: tokens.length, completionTokens };
    } finally {
      this.release(seq);
    }
  }

  /** Empties every free sequence's KV cache (benchmarks compare runs from a cold cache). */
  async clearCaches(): Promise<void> {
    for (const seq of this.free) await seq.clearHistory();
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
