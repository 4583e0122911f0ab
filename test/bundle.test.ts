import assert from 'node:assert/strict';
import { analyseBundle, type BundleInfo } from '../bench/bundle-info';
import { buildProductionBundle } from '../scripts/build-bundle';
import { workflowPreloadModules } from '../worker/bundle';

/** The target of issue 16: the bundle every workflow thread loads, source map included. */
const MAX_BYTES = 3_000_000;

describe('workflow bundle', function () {
  this.timeout(300_000);
  let info: BundleInfo;
  let code: string;

  before(async () => {
    // Built as scripts/build-bundle.ts builds dist/workflow-bundle.js: worker/bundle.ts's entry and interceptors.
    code = await buildProductionBundle();
    info = analyseBundle(code);
    const pkgs = Object.entries(info.packages)
      .sort((a, b) => b[1] - a[1])
      .map(([p, n]) => `${p} ${n}`)
      .join(', ');
    console.log(
      `      workflow bundle: ${info.bytes} bytes (${(info.bytes / 1e6).toFixed(2)} MB: code ${info.codeBytes}, inline source map ${info.sourceMapBytes}), ` +
        `${info.modules.length} modules; packages: ${pkgs}`,
    );
  });

  it('bundle: holds no zod, no ajv, no Node builtin and no Node-only module', () => {
    assert.deepEqual(info.forbidden, [], `modules with no place in workflow code:\n${info.forbidden.map((f) => `  ${f.module}: ${f.why}`).join('\n')}`);
    assert.ok(info.modules.some((m) => m.includes('workflows/interpreter')), 'the interpreter is in the bundle (the module scan found it)');
  });

  it('bundle: preloads the expression engine (shared by every workflow of a worker thread, not evaluated per workflow)', () => {
    const at = code.indexOf('exports.preloadModules = function preloadModules() {');
    assert.ok(at >= 0, 'the bundle has the SDK\'s preloadModules entry');
    const body = code.slice(at, code.indexOf('\n}', at));
    const required = [...body.matchAll(/__webpack_require__\([^)]*"([^"]+)"\)/g)].map((m) => m[1]!);
    assert.equal(required.length, workflowPreloadModules().length);
    assert.ok(required.some((r) => r.endsWith('/jsonata/jsonata.js')) && required.some((r) => r.endsWith('dist/graph/expression.js')), `preloaded: ${required.join(', ')}`);
  });

  it(`bundle: is at most ${MAX_BYTES} bytes, its inline source map included`, () => {
    assert.ok(info.bytes <= MAX_BYTES, `the workflow bundle is ${info.bytes} bytes (code ${info.codeBytes}, source map ${info.sourceMapBytes}), over ${MAX_BYTES}`);
  });

  it('bundle check: flags zod, ajv, a Node builtin, a Node-only package and a Node platform build', () => {
    const mod = (id: string) => `/***/ "${id}"\n/*!***/\n(function () {}),\n`;
    const code = [
      mod('./dist/workflows/index.js'),
      mod('../main/node_modules/zod/lib/index.js'),
      mod('../main/node_modules/ajv/dist/ajv.js'),
      mod('fs'),
      mod('../main/node_modules/pg/lib/index.js'),
      mod('../main/node_modules/@opentelemetry/core/build/esm/platform/node/environment.js'),
      mod('?0be9'),
    ].join('');
    const seen = analyseBundle(`${code}//# sourceMappingURL=data:application/json;base64,e30=\n`);
    assert.deepEqual(
      seen.forbidden.map((f) => f.module),
      ['../main/node_modules/zod/lib/index.js', '../main/node_modules/ajv/dist/ajv.js', 'fs', '../main/node_modules/pg/lib/index.js', '../main/node_modules/@opentelemetry/core/build/esm/platform/node/environment.js'],
    );
    assert.equal(seen.modules.length, 6, 'ignored optional modules (?id) are not counted');
    assert.equal(seen.packages['(project)'], 2); // the workflows entry and the builtin id
    assert.equal(seen.codeBytes, Buffer.byteLength(code));
  });
});
