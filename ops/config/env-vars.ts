import { GROUPS, SETTINGS, type GroupKey, type SettingDef } from '../../processors/runtime/settings.ts';

/**
 * The environment variables for people: `ipt env` prints them for a terminal, `ipt env --markdown` as the tables that
 * docs/operations.md holds between markers, and each command's `--help` names those of the groups it reads. All of it
 * comes from the one definition, processors/runtime/settings.ts (type, validation, default, meaning), which the code
 * reads the variables through; a test checks that the docs are the tables printed now and that the variables
 * defined there are the ones the code reads (no more, no fewer).
 */
export interface EnvVar {
  name: string;
  /** As the docs show it: a value in backticks, or words ("unset: …"). */
  default: string;
  meaning: string;
}

export interface EnvGroup {
  title: string;
  vars: EnvVar[];
}

export const ENV_GROUPS: EnvGroup[] = (Object.keys(GROUPS) as GroupKey[]).map((g) => ({
  title: GROUPS[g],
  vars: (Object.entries(SETTINGS) as [string, SettingDef<unknown>][]).filter(([, d]) => d.group === g).map(([name, d]) => ({ name, default: d.shown, meaning: d.meaning })),
}));

/** The variables' names, one by one. */
export const ENV_NAMES: string[] = ENV_GROUPS.flatMap((g) => g.vars.map((v) => v.name));

/** The docs' tables: a heading and a table per group. */
export function envTablesMarkdown(): string {
  const parts: string[] = [];
  for (const g of ENV_GROUPS) {
    parts.push(`### ${g.title}`, '', '| variable | default | meaning |', '|---|---|---|');
    for (const v of g.vars) parts.push(`| \`${v.name}\` | ${v.default} | ${v.meaning} |`);
    parts.push('');
  }
  return parts.join('\n');
}

/** Plain text for a terminal: a block per group, a line per variable. */
export function envTablesText(): string {
  const plain = (s: string) => s.replace(/`/g, '');
  const width = Math.max(...ENV_GROUPS.flatMap((g) => g.vars.map((v) => v.name.length)));
  return ENV_GROUPS.map((g) => [`${g.title}:`, ...g.vars.map((v) => `  ${v.name.padEnd(width)}  ${plain(v.meaning)} (default: ${plain(v.default)})`)].join('\n')).join('\n\n') + '\n';
}
