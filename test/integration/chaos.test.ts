import { describe, expect, it } from 'vitest';
import { CI_CASES, runChaos } from '../../ops/chaos/chaos.ts';

// The CI subset of `ipt chaos`: faults injected into bounded runs on a private stack of the suite's own (a temporary
// folder, free ports), never on the shared one. A private service that cannot start fails the test at once.

describe('chaos: faults cost time, not texts', () => {
  it('a killed stage (exactly-once), an LLM outage and a ClickHouse outage: nothing lost, nothing doubled with exactly-once, every metric row stored', async () => {
    const report = await runChaos({
      cases: [...CI_CASES],
      rounds: 2,
      partitions: 4,
      sessionTimeoutMs: 10_000,
      runTimeoutMs: 300_000,
      seed: 1,
      log: (l) => process.stderr.write(`chaos: ${l}\n`),
    });
    process.stderr.write(`${JSON.stringify(report, null, 2)}\n`);
    expect(report.scenarios.map((r) => r.scenario)).toEqual(CI_CASES.map((c) => c.scenario));
    for (const r of report.scenarios) {
      const what = `${r.scenario} (${r.topology}, exactly-once ${r.exactlyOnce}): ${r.notes.join(' | ')}`;
      expect.soft(r.faults.length, `${what}: faults injected`).toBe(r.scenario === 'stage-kill' ? CI_CASES[0]!.kills : 1);
      expect.soft(r.ingested, `${what}: ingested`).toBe(r.texts);
      expect.soft(r.lost, `${what}: lost`).toBe(0);
      expect.soft(r.accounted, `${what}: accounted`).toBe(r.texts);
      if (r.exactlyOnce) expect.soft(r.duplicated, `${what}: duplicated`).toBe(0);
      expect.soft(r.metricRows, `${what}: ClickHouse rows`).toBe(r.metricRowsExpected);
      expect.soft(r.extraRows, `${what}: extra ClickHouse rows`).toBe(0);
      if (r.scenario === 'llm-outage') expect.soft(r.deadLettered, `${what}: dead letters`).toBe(0);
    }
  }, 600_000);
});
