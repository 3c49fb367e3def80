import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { cannedServer, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { auditRun } from '../../ops/jobs/audit.ts';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { pipelineTopics, recordKey } from '../../processors/pipeline/pipeline-topics.ts';
import { produceAll, readTopic } from '../../processors/runtime/topic-io.ts';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { testKafka } from './helpers.ts';

let server: RecordedCompletionsServer | undefined;
afterAll(async () => {
  await server?.stop();
});

describe('ipt audit', () => {
  it('reconciles a finished run, then names what is lost, doubled or missing once the topics and ClickHouse are tampered with', async () => {
    server = await cannedServer();
    const iso = isolated();
    const { path } = writeCorpus(tmp(), 40);
    const s = await runOnStack(iso, path, { 'llm-url': server.url, rounds: '2', preset: 'from-scratch', 'convert-fraction': '0.5' });
    const kafka = testKafka();
    const serde = new AvroSerde(inject('stack').registryUrl);
    const topics = pipelineTopics(iso.prefix);
    const ch = clickhouseClient(inject('stack').clickhouseUrl, iso.database);
    try {
      const audit = () => auditRun({ kafka, serde, topics, clickhouse: ch, runId: s.runId });
      const clean = await audit();
      expect(clean).toMatchObject({ texts: 40, lost: 0, ingestedTwice: 0, deadLettered: 0, ok: true });
      expect(clean.converted + clean.raw).toBe(40);
      expect(clean.converted).toBe(s.augmented);
      expect(clean.mixed).toMatchObject({ records: s.mixed.records, copies: s.mixed.records, duplicated: 0, domainTexts: 40, missingFromMix: 0 });
      expect(clean.metrics).toMatchObject({ expected: s.augmented, events: s.augmented, missingEvents: 0, clickhouseRows: s.augmented, missingRows: 0, extraRows: 0 });

      // A raw text no stage will ever see (written after the stages stopped), a mixed record written twice, a row gone.
      await serde.registerValueSchema(topics.raw, 'raw-text');
      const orphan = { id: 'orphan-1', runId: s.runId, text: 'never processed', source: 'test', ingestedAt: Date.now(), seq: -1, round: 0, convert: false };
      const { loadSchema } = await import('../../processors/runtime/schemas.ts');
      await produceAll(kafka, topics.raw, [{ key: recordKey(s.runId, orphan.id), value: serde.encode(topics.raw, loadSchema('raw-text'), orphan) }]);
      const mixed = await readTopic(kafka, topics.mixed, { count: s.mixed.records, timeoutMs: 10_000 });
      const copy = mixed.messages.find((m) => m.key!.toString().startsWith(`${s.runId}/`))!;
      await produceAll(kafka, topics.mixed, [{ key: copy.key, value: copy.value }]);
      const victim = (await ch.query({ query: `SELECT record_id FROM synthesis_metrics WHERE run_id = '${s.runId}' LIMIT 1`, format: 'JSONEachRow' }).then((r) => r.json<{ record_id: string }>()))[0]!.record_id;
      await ch.command({ query: `ALTER TABLE synthesis_metrics DELETE WHERE record_id = '${victim}'` });
      // Mutations apply in the background.
      for (let i = 0; i < 50; i++) {
        const left = await ch.query({ query: `SELECT count() AS c FROM synthesis_metrics WHERE record_id = '${victim}'`, format: 'JSONEachRow' }).then((r) => r.json<{ c: string }>());
        if (Number(left[0]!.c) === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }

      const dirty = await audit();
      expect(dirty.ok).toBe(false);
      expect(dirty).toMatchObject({ texts: 41, lost: 1, lostIds: ['orphan-1'] });
      expect(dirty.mixed).toMatchObject({ copies: s.mixed.records + 1, duplicated: 1, duplicatedIds: [copy.key!.toString().slice(s.runId.length + 1)] });
      expect(dirty.metrics).toMatchObject({ missingRows: 1, clickhouseRows: s.augmented - 1 });
    } finally {
      await ch.close();
    }
  });
});
