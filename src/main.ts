#!/usr/bin/env bun
/** The isched executable. */
import { run } from "./cli/main.ts";

await run(process.argv.slice(2));
