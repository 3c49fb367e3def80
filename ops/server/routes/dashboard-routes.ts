import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { deadLetterGroups, f1ByDataset, histograms, lagOverTime, latestPairSamples, mixShareOverTime, recentDeadLetters, roundAggregates, runIds, throughput, trainingCurve } from '../../../connectors/clickhouse/run-queries.ts';
import { judgeCategories, judgeVerdicts } from '../../../connectors/clickhouse/judge-queries.ts';
import type { Logger } from '../../../processors/runtime/logger.ts';
import type { BackendStats } from '../../../processors/pipeline/llm-port.ts';
import { dashboardQuery } from '../request-schemas.ts';
import { wilsonInterval } from '../../../processors/evaluation/judge.ts';
import { packagePath } from '../../../processors/runtime/package-root.ts';

const require = createRequire(import.meta.url);

/** The live dashboard: its page, Chart.js, and the ClickHouse queries behind it. Open to read, like /metrics. */
export function dashboardRoutes(d: { ch: ClickHouseClient; logger: Logger; backends?: () => BackendStats[] }): FastifyPluginAsync {
  const page = readFileSync(packagePath('ops', 'server', 'dashboard.html'), 'utf8');
  // Chart.js's UMD build, served from the installed package (the page loads nothing from elsewhere).
  const chartJs = readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  return async (app) => {
    // The run reaches ClickHouse as a query parameter, or a string literal where the server has none (run-queries.ts).
    app.get('/api/dashboard', { schema: { querystring: dashboardQuery } }, async (req, reply) => {
      const query = req.query as { run?: string; kind?: string };
      const run = query.run || undefined;
      try {
        const [runList, rounds, f1, tput, lag, training, deadLetters, recentDead, hist, samples, mix, verdicts, categories] = await Promise.all([
          runIds(d.ch),
          roundAggregates(d.ch, run),
          f1ByDataset(d.ch, run),
          throughput(d.ch, run),
          lagOverTime(d.ch),
          trainingCurve(d.ch, run),
          deadLetterGroups(d.ch, run),
          recentDeadLetters(d.ch, run),
          histograms(d.ch, run),
          latestPairSamples(d.ch, run, query.kind || undefined),
          mixShareOverTime(d.ch, run),
          judgeVerdicts(d.ch, run),
          judgeCategories(d.ch, run),
        ]);
        // The judge's rates with their 95% Wilson intervals, per run, round and judge model.
        const judge = verdicts.map((v) => ({ ...v, relevantRate: wilsonInterval(v.relevant, v.judged), accurateRate: wilsonInterval(v.accurate, v.judged) }));
        return { run: run ?? null, runs: runList, rounds, f1, throughput: tput, lag, training, deadLetters, recentDead, histograms: hist, samples, mix, judge, judgeCategories: categories, backends: d.backends?.() ?? null };
      } catch (err) {
        // ClickHouse down or overloaded: not the server's failure, and the page asks again every 5 s.
        d.logger.warn({ err: (err as Error).message }, 'dashboard queries failed');
        return reply.code(503).send({ error: `dashboard queries failed: ${(err as Error).message}` });
      }
    });
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
    app.get('/assets/chart.umd.min.js', async (_req, reply) => reply.type('application/javascript').header('cache-control', 'max-age=3600').send(chartJs));
  };
}
