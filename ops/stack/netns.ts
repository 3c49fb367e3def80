import { execFileSync } from 'node:child_process';
import type { ClusterLayout, ClusterNode } from './cluster-layout.ts';

/**
 * Each cluster node in a network namespace of its own, joined by a veth pair to a bridge on the host: real
 * per-node addresses, and a node can be cut off the network by setting its host-side veth down.
 */

let usable: boolean | undefined;

/** Root on Linux with iproute2's `ip netns`: the setup itself can still fail (a sandbox without CAP_NET_ADMIN). */
export function netnsUsable(): boolean {
  usable ??= process.platform === 'linux' && process.getuid?.() === 0 && succeeds(['netns', 'list']);
  return usable;
}

function succeeds(args: string[]): boolean {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const linkExists = (name: string, ns?: string) => succeeds([...(ns ? ['-n', ns] : []), 'link', 'show', name]);

function namespaces(): Set<string> {
  return new Set(ip(['netns', 'list']).split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean));
}

/** Creates what is missing, fixes what is half made, and (re)connects every node: safe to run again. */
export function setupNetwork(layout: ClusterLayout): void {
  const br = layout.bridge;
  if (!br) throw new Error('setupNetwork: the layout has no bridge (loopback cluster)');
  // Another link already routing this /24 (another stack folder, a VPN) would make the nodes unreachable.
  const route = ip(['-4', 'route', 'show', `${br.subnet}.0/24`]).trim();
  if (route && !route.includes(`dev ${br.name} `) && !route.endsWith(`dev ${br.name}`)) {
    throw new Error(`${br.subnet}.0/24 is already routed (${route}): set IPT_STACK_SUBNET to a free 10.x.y for this stack folder`);
  }
  if (!linkExists(br.name)) ip(['link', 'add', br.name, 'type', 'bridge']);
  ip(['addr', 'replace', `${br.address}/24`, 'dev', br.name]);
  ip(['link', 'set', br.name, 'up']);
  const present = namespaces();
  for (const node of layout.nodes) {
    const ns = node.netns!;
    if (!present.has(ns.name)) ip(['netns', 'add', ns.name]);
    ip(['-n', ns.name, 'link', 'set', 'lo', 'up']);
    if (!linkExists(ns.hostVeth)) {
      // An interrupted setup may have left the namespace's end behind.
      if (linkExists(ns.nsVeth, ns.name)) ip(['-n', ns.name, 'link', 'del', ns.nsVeth]);
      ip(['link', 'add', ns.hostVeth, 'type', 'veth', 'peer', 'name', ns.nsVeth, 'netns', ns.name]);
    }
    ip(['link', 'set', ns.hostVeth, 'master', br.name]);
    ip(['link', 'set', ns.hostVeth, 'up']);
    ip(['-n', ns.name, 'addr', 'replace', `${node.host}/24`, 'dev', ns.nsVeth]);
    ip(['-n', ns.name, 'link', 'set', ns.nsVeth, 'up']);
  }
}

/** Deletes the namespaces (their veth pairs go with them) and the bridge; whatever is already gone is skipped. */
export function teardownNetwork(layout: ClusterLayout): void {
  if (!layout.bridge || !netnsUsable()) return;
  const present = namespaces();
  for (const node of layout.nodes) {
    const ns = node.netns!;
    if (present.has(ns.name)) ip(['netns', 'del', ns.name]);
    // Deleting the namespace takes its veth pair with it, a moment later: the link may vanish between check and delete.
    if (linkExists(ns.hostVeth)) deleteLink(ns.hostVeth);
  }
  if (linkExists(layout.bridge.name)) deleteLink(layout.bridge.name);
}

/** `ip link del`, where a link that is already gone is not an error. */
function deleteLink(name: string): void {
  try {
    ip(['link', 'del', name]);
  } catch (err) {
    if (!/Cannot find device/.test((err as Error).message)) throw err;
  }
}

/**
 * Whether the host still has the cluster's bridge. Without it, the nodes' addresses would be routed out of the
 * machine's default route: nothing may probe them then.
 */
export function networkPresent(layout: ClusterLayout): boolean {
  return !layout.bridge || (netnsUsable() && linkExists(layout.bridge.name));
}

/** Up or down on the host side of a node's veth: down cuts it off from clients and the other nodes alike. */
export function setNodeLink(node: ClusterNode, up: boolean): void {
  if (!node.netns) throw new Error(`${node.name} is not in a network namespace`);
  ip(['link', 'set', node.netns.hostVeth, up ? 'up' : 'down']);
}

/** Whether the host side of a node's veth is administratively up (not cut off by isolateNode). */
export function nodeLinkUp(node: ClusterNode): boolean {
  if (!node.netns) return true;
  try {
    return /<[^>]*\bUP\b[^>]*>/.test(ip(['-o', 'link', 'show', node.netns.hostVeth]));
  } catch {
    return false;
  }
}

/** The command that runs `cmd` inside the node's namespace (ip execs it: the pid is the command's own). */
export function inNamespace(node: ClusterNode, cmd: string, args: string[]): [string, string[]] {
  return node.netns ? ['ip', ['netns', 'exec', node.netns.name, cmd, ...args]] : [cmd, args];
}
