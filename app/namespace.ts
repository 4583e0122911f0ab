/**
 * Namespace and search-attribute setup: the code lives with the worker
 * (worker/temporal-setup.ts), which ensures both before it polls; the app,
 * tests and benchmarks import it from here as before.
 */
export * from '../worker/temporal-setup';
