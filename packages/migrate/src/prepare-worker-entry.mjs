// Worker entry in plain JavaScript: registers the TypeScript loader (tsx) in this thread, then runs
// the worker written in TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./prepare-worker.ts');
