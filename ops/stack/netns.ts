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

/**
 * A "host" of its own beside the cluster's nodes: a namespace `ipt-<tag>-h<name>` with an address on the cluster's
 * bridge (10.77.x.101 and up), for a client process (a stage) that must be cut off the network on its own.
 */
export interface HostNamespace {
  name: string;
  /** Its address on the bridge; the bridge's own address (the host) is `gateway`. */
  address: string;
  gateway: string;
  hostVeth: string;
  nsVeth: string;
}

/** Host namespaces take addresses from here up (nodes use .11 to .15). */
const FIRST_HOST_OCTET = 101;

/** `ipt<tag>br` → the stack folder's tag, which names everything of its cluster's network. */
function bridgeTag(layout: ClusterLayout): { tag: string; bridge: NonNullable<ClusterLayout['bridge']> } {
  const bridge = layout.bridge;
  const tag = bridge && /^ipt(.+)br$/.exec(bridge.name)?.[1];
  if (!bridge || !tag) throw new Error('host namespaces need a cluster in network namespaces (the layout has no bridge)');
  return { tag, bridge };
}

function hostNames(tag: string, name: string): Pick<HostNamespace, 'name' | 'hostVeth' | 'nsVeth'> {
  // Interface names are at most 15 bytes: ipt + 4-character tag + 1 + name.
  if (!/^[a-z0-9]{1,6}$/.test(name)) throw new Error(`host namespace name "${name}": 1 to 6 lower-case letters or digits`);
  return { name: `ipt-${tag}-h${name}`, hostVeth: `ipt${tag}p${name}`, nsVeth: `ipt${tag}q${name}` };
}

/** The bridge addresses host namespaces of this cluster hold now, by namespace (not their loopback's). */
function hostAddresses(tag: string, subnet: string): Map<string, string> {
  const out = new Map<string, string>();
  const onBridge = new RegExp(`inet (${subnet.replace(/\./g, '\\.')}\\.\\d+)/`);
  for (const ns of namespaces()) {
    if (!ns.startsWith(`ipt-${tag}-h`)) continue;
    const m = onBridge.exec(ip(['-n', ns, '-4', '-o', 'addr', 'show']));
    if (m) out.set(ns, m[1]!);
  }
  return out;
}

/**
 * Creates (or completes) host namespace `name` on the cluster's bridge and returns it; idempotent: an existing one
 * keeps its address. The bridge must exist (the cluster is up). Only the /24 is routed inside: it reaches the nodes
 * and the bridge's address, nothing on the host's 127.0.0.1.
 */
export function hostNamespace(layout: ClusterLayout, name: string): HostNamespace {
  const { tag, bridge } = bridgeTag(layout);
  const h = hostNames(tag, name);
  if (!linkExists(bridge.name)) throw new Error(`bridge ${bridge.name} does not exist: start the cluster first`);
  const taken = hostAddresses(tag, bridge.subnet);
  let address = taken.get(h.name);
  if (!address) {
    const used = new Set(taken.values());
    for (let octet = FIRST_HOST_OCTET; octet < 255 && !address; octet++) if (!used.has(`${bridge.subnet}.${octet}`)) address = `${bridge.subnet}.${octet}`;
    if (!address) throw new Error(`no free host address left in ${bridge.subnet}.0/24`);
  }
  if (!namespaces().has(h.name)) ip(['netns', 'add', h.name]);
  ip(['-n', h.name, 'link', 'set', 'lo', 'up']);
  if (!linkExists(h.hostVeth)) {
    if (linkExists(h.nsVeth, h.name)) ip(['-n', h.name, 'link', 'del', h.nsVeth]);
    ip(['link', 'add', h.hostVeth, 'type', 'veth', 'peer', 'name', h.nsVeth, 'netns', h.name]);
  }
  ip(['link', 'set', h.hostVeth, 'master', bridge.name]);
  ip(['link', 'set', h.hostVeth, 'up']);
  ip(['-n', h.name, 'addr', 'replace', `${address}/24`, 'dev', h.nsVeth]);
  ip(['-n', h.name, 'link', 'set', h.nsVeth, 'up']);
  return { ...h, address, gateway: bridge.address };
}

/** Up or down on the host side of its veth: down cuts the namespace off from the nodes and the host alike. */
export function setHostLink(h: HostNamespace, up: boolean): void {
  ip(['link', 'set', h.hostVeth, up ? 'up' : 'down']);
}

/** The command that runs `cmd` inside a host namespace (ip execs it: the pid is the command's own). */
export function inHostNamespace(h: HostNamespace, cmd: string, args: string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', h.name, cmd, ...args]];
}

/**
 * Deletes every host namespace of the cluster (their veth pairs go with them); returns their names. Call it before
 * teardownNetwork: deleting the bridge leaves them behind.
 */
export function teardownHostNamespaces(layout: ClusterLayout): string[] {
  if (!layout.bridge || !netnsUsable()) return [];
  const { tag } = bridgeTag(layout);
  const gone: string[] = [];
  for (const ns of namespaces()) {
    if (!ns.startsWith(`ipt-${tag}-h`)) continue;
    ip(['netns', 'del', ns]);
    gone.push(ns);
  }
  return gone;
}

/**
 * Why namespaces cannot be used here, or undefined when they can: `ip netns` answering is not enough (a sandbox
 * without CAP_NET_ADMIN lists them but cannot make links), so a throwaway namespace with a veth pair is made and
 * deleted.
 */
export function netnsProblem(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!netnsUsable()) return '`ip netns` is not available (iproute2)';
  const ns = `ipt-probe-${process.pid}`;
  const veth = `iptprobe${process.pid % 100000}`;
  try {
    ip(['netns', 'add', ns]);
    ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    if (linkExists(veth)) succeeds(['link', 'del', veth]);
    if (namespaces().has(ns)) succeeds(['netns', 'del', ns]);
  }
}
