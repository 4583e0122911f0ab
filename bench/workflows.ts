/**
 * `--shared-bundle` only: the interpreter and the hand-written baselines in one bundle on one worker, the
 * measurement before issue 16. A normal run bundles the baselines alone (bench/baseline.ts) and runs the
 * interpreter on the production bundle.
 */
export { pinflowInterpreter } from '../workflows/interpreter';
export { baselineControl, baselineSequential, baselineWait } from './baseline';
