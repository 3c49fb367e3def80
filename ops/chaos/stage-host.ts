import { setHostLink, type HostNamespace } from '../stack/netns.ts';
import type { PrivateStack } from './private-stack.ts';
import { relayUrls, type TcpRelay } from './relay.ts';

/**
 * A host of its own for a stage process: a network namespace on the private cluster's bridge, from which the stage
 * reaches the Kafka nodes directly and the registry, ClickHouse and the LLM endpoints (on the host's 127.0.0.1)
 * through relays on the bridge's address. Cutting its link cuts all of them at once, as a lost machine would.
 */
export interface StageHost {
  host: HostNamespace;
  /** IPT_REGISTRY_URL and IPT_CLICKHOUSE_URL as the stage on this host reaches them. */
  env: Record<string, string>;
  /** The LLM endpoints as the stage on this host reaches them. */
  llmUrls: string[];
  /** Link down (true) or up (false). */
  cut(down: boolean): void;
  /** Link up again, relays closed; the namespace itself goes with the stack. */
  close(): Promise<void>;
}

export async function stageHost(stack: PrivateStack, llmUrls: string[]): Promise<StageHost> {
  const host = stack.hostNamespace('stage');
  const { registryUrl, clickhouseUrl } = stack.endpoints;
  const relayed = await relayUrls(host.gateway, [registryUrl, clickhouseUrl, ...llmUrls]);
  const relays: TcpRelay[] = relayed.relays;
  const [registry, clickhouse, ...llm] = relayed.urls as [string, string, ...string[]];
  return {
    host,
    env: { IPT_REGISTRY_URL: registry, IPT_CLICKHOUSE_URL: clickhouse },
    llmUrls: llm,
    cut: (down) => setHostLink(host, !down),
    async close() {
      try {
        setHostLink(host, true);
      } catch {
        // the namespace is gone already
      }
      await Promise.allSettled(relays.map((r) => r.close()));
    },
  };
}
