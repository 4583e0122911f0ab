// The workflow bundle's entry: only Temporal workflow code lives under workflows/.
export { pinflowInterpreter } from './interpreter';
