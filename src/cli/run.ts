/** Process entry of the CLI (bin/sinkstream.js runs the compiled copy; tests run this file under tsx). */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
