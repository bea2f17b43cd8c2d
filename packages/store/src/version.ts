// inrun's version.
/** inrun's version, stored with every run. */
export const VERSION = '0.1.0';
