/** The benchmark worker's workflows: the interpreter and the hand-written baselines, in one bundle. */
export { pinflowInterpreter } from '../workflows/interpreter';
export { baselineControl, baselineSequential, baselineWait } from './baseline';
