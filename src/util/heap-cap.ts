/**
 * The young-generation cap of the `continuum` command (capYoungGeneration in ./heap), started by
 * importing this module first in src/cli.ts: loading the server's modules alone grows V8's young
 * generation from 1 to 32 MB, and V8 does not shrink it while a server is busy, so a cap set once
 * `serve` runs would come too late. Commands that trade memory for speed (`import`) lift it.
 *
 * CONTINUUM_YOUNG_GENERATION_MB sets the cap (0: V8's own policy); the CLI reports a value that is
 * not a whole number, and until then the default applies.
 */
import { capYoungGeneration } from './heap';

/** Both semi-spaces together; V8 grows them to 32 MB under load. */
export const YOUNG_GENERATION_MB = 4;

const raw = process.env.CONTINUUM_YOUNG_GENERATION_MB;
const asked = raw === undefined || raw === '' ? YOUNG_GENERATION_MB : Number(raw);
// The same rule as the CLI's check (wholeNumberFromEnv), which reports what this ignores.
const mb = Number.isInteger(asked) && asked >= 0 ? asked : YOUNG_GENERATION_MB;

export const youngGenerationCap = mb > 0 ? capYoungGeneration(mb) : { lift: (): void => undefined };
