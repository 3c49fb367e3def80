/**
 * The house's layers (docs/architecture.md, "Layers"): each imports only the layers below it.
 *   method (pure: formats, parsing, templates, F1, mixing) → runtime → stages → adapters → application
 * `npm test` runs this check (`npm run lint:layers`), so an upward import fails the build.
 */
const METHOD = [
  '^processors/pretrain-text/',
  '^processors/evaluation/(f1|judge|paper-figures)\\.ts$',
  '^processors/mixing/mix-sampler\\.ts$',
  '^processors/round-feedback/(pair-kinds|pair-sample|parse-output|python-whitespace|quality|templated-records)\\.ts$',
  '^processors/templating/(length-estimators|multi-round|request-prompt|synthesizer-format|text-checks|text-rule)\\.ts$',
  '^processors/pipeline/(records|run-config|avro-records\\.generated)\\.ts$',
  '^processors/synthesizer-data/',
  '^trainers/sink/sequence-packer\\.ts$',
];
const RUNTIME = '^processors/runtime/';
const STAGES = '^processors/(?!runtime/)';
const ADAPTERS = '^connectors/';
const APPLICATION = '^(ops/|index\\.ts$)';

module.exports = {
  forbidden: [
    { name: 'method-is-pure', severity: 'error', comment: 'the method imports only the method (no runtime, stage, adapter or I/O)',
      from: { path: METHOD }, to: { pathNot: [...METHOD, '^node:(crypto|util)$', '^(crypto|util)$'] } },
    { name: 'runtime-below-stages', severity: 'error', comment: 'the runtime knows no stage, adapter or application',
      from: { path: RUNTIME }, to: { path: [STAGES, ADAPTERS, APPLICATION, '^trainers/'], pathNot: METHOD } },
    { name: 'stages-below-adapters', severity: 'error', comment: 'stages reach adapters through ports their context hands them',
      from: { path: STAGES, pathNot: METHOD }, to: { path: [ADAPTERS, APPLICATION, '^trainers/'] } },
    { name: 'adapters-below-application', severity: 'error', comment: 'adapters know no application code',
      from: { path: ADAPTERS }, to: { path: [APPLICATION, '^trainers/'] } },
    { name: 'no-test-code', severity: 'error', comment: 'production code does not import the tests or their doubles',
      from: { pathNot: '^test/' }, to: { path: '^test/' } },
    { name: 'no-dev-dependency', severity: 'error', comment: 'what the package exports must not load a devDependency',
      from: { path: '^(processors|connectors|trainers)/|^index\\.ts$' }, to: { dependencyTypes: ['npm-dev'] } },
    { name: 'no-circular', severity: 'error', comment: 'no import cycle (one that only a type import closes is harmless at run time)',
      from: {}, to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|test/|\\.stack/)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
