import { describe, expect, it } from 'vitest';
import { installSteps, parseInstallReport } from '../../ops/stack/python-env.ts';

/** The shape `pip install --dry-run --report` writes (trimmed to the fields read). */
const report = JSON.stringify({
  version: '1',
  pip_version: '23.2.1',
  install: [
    { is_direct: false, metadata: { name: 'confluent-kafka', version: '2.16.1' } },
    { is_direct: false, metadata: { name: 'torch', version: '2.15.0' } },
    { is_direct: false, metadata: { name: 'nvidia-cudnn-cu13', version: '9.26.0.51' } },
    { is_direct: true, metadata: { name: 'instruct-pt-trainer', version: '0.1.0' } },
    { is_direct: false, metadata: { name: 'triton', version: '3.9.0' } },
    { is_direct: false, metadata: { name: 'nvidia-cublas', version: '13.4.1.3' } },
    { is_direct: false, metadata: { name: 'fastavro', version: '1.13.1' } },
  ],
});

describe('trainer environment install steps', () => {
  it('installs the large wheels one per step, the rest together, without the project itself or triton', () => {
    expect(installSteps(parseInstallReport(report))).toEqual([
      ['torch==2.15.0'],
      ['nvidia-cudnn-cu13==9.26.0.51'],
      ['nvidia-cublas==13.4.1.3'],
      ['confluent-kafka==2.16.1', 'fastavro==1.13.1'],
    ]);
  });

  it('rejects a report of another form, or an entry without name or version, saying which', () => {
    expect(() => parseInstallReport(JSON.stringify({ version: '2', install: [] }))).toThrow(/unknown form \(version 2\)/);
    expect(() => parseInstallReport(JSON.stringify({ version: '1', install: [{ metadata: { name: 'x' } }] }))).toThrow(/entry 0 has no name or version/);
  });
});
