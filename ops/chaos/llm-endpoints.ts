import { cannedPairs, RecordedCompletionsServer } from '../recorded-llm/recorded-completions-server.ts';

/**
 * OpenAI-compatible completions endpoints that answer every prompt with made-up pairs (no model: the suite tests the
 * dataflow, not the synthesizer), each of which can go down and come back on the same port.
 */
export class LlmEndpoints {
  private readonly servers: RecordedCompletionsServer[] = [];
  private readonly ports: number[] = [];
  private readonly up: boolean[] = [];
  private servedBefore = 0;

  static async start(n: number): Promise<LlmEndpoints> {
    const e = new LlmEndpoints();
    for (let i = 0; i < n; i++) {
      const s = new RecordedCompletionsServer({}, undefined, cannedPairs);
      const url = await s.start();
      e.servers.push(s);
      e.ports.push(Number(new URL(url).port));
      e.up.push(true);
    }
    return e;
  }

  get urls(): string[] {
    return this.ports.map((p) => `http://127.0.0.1:${p}/v1`);
  }

  /** Prompts answered so far, over every endpoint and restart. */
  served(): number {
    // The server keeps each prompt; a long run would hold them all, so they are counted and dropped.
    for (const s of this.servers) this.servedBefore += s.prompts.splice(0).length;
    return this.servedBefore;
  }

  async down(i: number): Promise<void> {
    if (!this.up[i]) return;
    this.served();
    this.up[i] = false;
    await this.servers[i]!.stop();
  }

  async back(i: number): Promise<void> {
    if (this.up[i]) return;
    await this.servers[i]!.start(this.ports[i]);
    this.up[i] = true;
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.servers.length; i++) await this.down(i);
  }
}
