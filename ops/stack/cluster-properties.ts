import type { ClusterLayout, ClusterNode } from './cluster-layout.ts';
import type { ClusterSecrets } from './cluster-secrets.ts';
import { ADMIN_USER, APP_USER } from './cluster-secrets.ts';
import { NODE_OU, NODE_PRINCIPAL, type ClusterTls } from './cluster-tls.ts';
import { brokerPropertyLines } from './broker-settings.ts';

/**
 * server.properties of one node. Three listeners: CLIENT (what clients use), INTERNAL (replication between brokers)
 * and CONTROLLER (KRaft). Secure: CLIENT is SASL_SSL (SCRAM-SHA-512/256, PLAIN), INTERNAL and CONTROLLER are SSL
 * with client certificates required, so the nodes authenticate each other by certificate and no listener has an
 * anonymous principal.
 */
export function nodeProperties(layout: ClusterLayout, node: ClusterNode, sec?: { secrets: ClusterSecrets; tls: ClusterTls }): string {
  const rf = Math.min(3, layout.brokers);
  const minIsr = Math.max(1, rf - 1);
  const voters = layout.nodes.map((n) => `${n.id}@${n.host}:${n.controllerPort}`).join(',');
  const lines = [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=CLIENT://${node.host}:${node.clientPort},INTERNAL://${node.host}:${node.internalPort},CONTROLLER://${node.host}:${node.controllerPort}`,
    `advertised.listeners=CLIENT://${node.host}:${node.clientPort},INTERNAL://${node.host}:${node.internalPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=INTERNAL',
    `listener.security.protocol.map=${sec ? 'CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL' : 'CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT'}`,
    `log.dirs=${node.dataDir}`,
    'num.partitions=1',
    // Replicated: a record acknowledged with acks=all is on two nodes at least, and one node may be lost.
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${rf}`,
    'offsets.topic.num.partitions=8',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=8',
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    ...brokerPropertyLines(),
    // A follower that stops fetching leaves the ISR after 10 s (default 30 s): writes with acks=all resume sooner.
    'replica.lag.time.max.ms=10000',
    // Few threads: several nodes share two cores.
    'num.network.threads=2',
    'num.io.threads=2',
    'background.threads=2',
    'num.recovery.threads.per.data.dir=1',
    'log.cleaner.threads=1',
    'group.coordinator.threads=1',
    'share.coordinator.threads=1',
  ];
  if (sec) lines.push(...securityProperties(sec.secrets, sec.tls, node));
  return `${lines.join('\n')}\n`;
}

function securityProperties(secrets: ClusterSecrets, tls: ClusterTls, node: ClusterNode): string[] {
  const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
  // PLAIN checks passwords from its JAAS options: the same passwords as SCRAM (this file is owner-only).
  const plain = `org.apache.kafka.common.security.plain.PlainLoginModule required user_${ADMIN_USER}="${secrets.admin}" user_${APP_USER}="${secrets.app}";`;
  return [
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${tls.keystore(node)}`,
    `ssl.keystore.password=${secrets.store}`,
    `ssl.key.password=${secrets.store}`,
    'ssl.truststore.type=PKCS12',
    `ssl.truststore.location=${tls.truststore}`,
    `ssl.truststore.password=${secrets.store}`,
    // Node-to-node listeners demand a certificate from the stack's CA; clients on CLIENT authenticate by SASL.
    'listener.name.internal.ssl.client.auth=required',
    'listener.name.controller.ssl.client.auth=required',
    'listener.name.client.ssl.client.auth=none',
    // Every node's certificate (OU=ipt-node) maps to one principal, User:ipt-node, instead of a DN per node.
    `ssl.principal.mapping.rules=RULE:^CN=kafka-[0-9]+,OU=${NODE_OU},O=instruct-pt$/${NODE_PRINCIPAL}/,DEFAULT`,
    'listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN',
    `listener.name.client.scram-sha-512.sasl.jaas.config=${scram}`,
    `listener.name.client.scram-sha-256.sasl.jaas.config=${scram}`,
    `listener.name.client.plain.sasl.jaas.config=${plain}`,
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found=false',
    // The nodes themselves (broker registration, replication, Raft) and the admin user bypass ACLs.
    `super.users=User:${ADMIN_USER};User:${NODE_PRINCIPAL}`,
  ];
}

/** SCRAM credentials written into the metadata log when the nodes are formatted. */
export function scramFormatArgs(secrets: ClusterSecrets): string[] {
  const out: string[] = [];
  for (const mech of ['SCRAM-SHA-512', 'SCRAM-SHA-256']) {
    out.push('--add-scram', `${mech}=[name=${ADMIN_USER},password=${secrets.admin}]`);
    out.push('--add-scram', `${mech}=[name=${APP_USER},password=${secrets.app}]`);
  }
  return out;
}
