import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one process; every series is labelled with the processor it belongs to. */
export class ProcessorMetrics {
  readonly registry: Registry;
  readonly recordsIn: Counter<'processor' | 'topic'>;
  readonly recordsOut: Counter<'processor' | 'topic'>;
  readonly deadLettered: Counter<'processor' | 'stage'>;
  readonly skipped: Counter<'processor' | 'reason'>;
  readonly lag: Gauge<'processor' | 'topic' | 'partition'>;
  readonly handlerLatency: Histogram<'processor'>;
  readonly batchLatency: Histogram<'processor'>;
  readonly paused: Gauge<'processor'>;
  readonly consumerRestarts: Counter<'processor'>;

  constructor(registry = new Registry()) {
    this.registry = registry;
    collectDefaultMetrics({ register: registry, prefix: 'ipt_process_' });
    const registers = [registry];
    this.recordsIn = new Counter({ name: 'ipt_records_in_total', help: 'Records consumed', labelNames: ['processor', 'topic'], registers });
    this.recordsOut = new Counter({ name: 'ipt_records_out_total', help: 'Records produced', labelNames: ['processor', 'topic'], registers });
    this.deadLettered = new Counter({ name: 'ipt_records_dead_lettered_total', help: 'Records sent to the dead-letter topic', labelNames: ['processor', 'stage'], registers });
    this.skipped = new Counter({ name: 'ipt_records_skipped_total', help: 'Records deliberately not forwarded', labelNames: ['processor', 'reason'], registers });
    this.lag = new Gauge({ name: 'ipt_consumer_lag', help: 'High watermark minus the last processed offset', labelNames: ['processor', 'topic', 'partition'], registers });
    this.handlerLatency = new Histogram({
      name: 'ipt_handler_latency_seconds',
      help: 'Handler time per record',
      labelNames: ['processor'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.batchLatency = new Histogram({
      name: 'ipt_batch_latency_seconds',
      help: 'Decode + handle + produce + commit time per batch',
      labelNames: ['processor'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.consumerRestarts = new Counter({ name: 'ipt_consumer_restarts_total', help: 'Consumers rebuilt after a crash kafkajs does not recover from', labelNames: ['processor'], registers });
    this.paused = new Gauge({ name: 'ipt_consumer_paused', help: '1 while the consumer is paused for backpressure', labelNames: ['processor'], registers });
  }
}
