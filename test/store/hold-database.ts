/**
 * Test helper run as a child process: opens the database given as argument (taking the data lock),
 * prints "ready", and keeps it open until killed.
 */
import { openDatabase } from "../../src/store/sqlite/database.ts";

const db = openDatabase(process.argv[2]!);
process.stdout.write(`ready ${process.pid}\n`);
setInterval(() => db.query("SELECT 1").get(), 1000);
