/** After tsc: make the `apb` bin executable (npm links it as a command). */
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
chmodSync(fileURLToPath(new URL('./main.js', import.meta.url)), 0o755);
