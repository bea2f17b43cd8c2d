// Vitest setup file: tf.js' "install the node backend" banner is noise in inrun's own test output (the library never silences it).
import { quietNodeBanner } from '../packages/inrun/src/quiet-banner.js';

quietNodeBanner();
