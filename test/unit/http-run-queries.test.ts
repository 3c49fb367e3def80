import { describe, expect, it } from 'vitest';
import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { f1ByDataset, metricRowCounts, roundAggregates, throughput } from '../../connectors/clickhouse/run-queries.ts';
import { supportsQueryParameters } from '../../connectors/clickhouse/query-filters.ts';

interface Sent {
  query: string;
  query_params?: Record<string, unknown>;
}

/** A stand-in for the ClickHouse client that records each query and answers as a server with or without parameters. */
function fakeClient(mode: 'parameters' | 'none', unreachableFirst = false): { ch: ClickHouseClient; sent: Sent[] } {
  const sent: Sent[] = [];
  let unreachable = unreachableFirst;
  const ch = {
    async query(q: Sent) {
      sent.push(q);
      const probe = q.query.includes('{probe:String}');
      if (probe && unreachable) {
        // Reachable again for the next question.
        unreachable = false;
        throw new Error('connect ECONNREFUSED 127.0.0.1:8123');
      }
      if (probe && mode !== 'parameters') throw new ClickHouseError({ message: 'Unknown setting param_probe', code: '115', type: undefined });
      return { json: async () => (probe ? [{ p: q.query_params!.probe }] : []) };
    },
  } as unknown as ClickHouseClient;
  return { ch, sent };
}

const RUN = "x' OR 1=1 -- \\ \u0000 é";

describe('run queries', () => {
  it('pass the run as a query parameter where the server has them, asking the server once', async () => {
    const { ch, sent } = fakeClient('parameters');
    await roundAggregates(ch, RUN);
    await f1ByDataset(ch, RUN);
    await throughput(ch, RUN);
    await metricRowCounts(ch, RUN);
    const probes = sent.filter((s) => s.query.includes('{probe:String}'));
    expect(probes).toHaveLength(1);
    const queries = sent.filter((s) => !s.query.includes('{probe:String}'));
    expect(queries).toHaveLength(6); // metricRowCounts asks three tables
    for (const q of queries) {
      expect(q.query).toContain('run_id = {run:String}');
      expect(q.query).not.toContain('OR 1=1');
      expect(q.query_params).toEqual({ run: RUN });
    }
  });

  it('write the run as a string literal where the server has no parameters (ClickHouse 18.16)', async () => {
    const { ch, sent } = fakeClient('none');
    expect(await supportsQueryParameters(ch)).toBe(false);
    await roundAggregates(ch, RUN);
    await throughput(ch, RUN);
    expect(sent.filter((s) => s.query.includes('{probe:String}'))).toHaveLength(1);
    for (const q of sent.slice(1)) {
      expect(q.query).toContain("run_id = 'x\\' OR 1=1 -- \\\\ \\0 é'");
      expect(q.query_params).toEqual({});
    }
  });

  it('ask again after a failed connection rather than remember it as no parameters', async () => {
    const { ch, sent } = fakeClient('parameters', true);
    // This once the literal is used; the next query asks again and gets the answer.
    expect(await supportsQueryParameters(ch)).toBe(false);
    expect(await supportsQueryParameters(ch)).toBe(true);
    expect(await supportsQueryParameters(ch)).toBe(true);
    expect(sent).toHaveLength(2);
  });

  it('query every run without a filter', async () => {
    const { ch, sent } = fakeClient('parameters');
    await roundAggregates(ch);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.query).toContain('WHERE 1 ');
  });
});
