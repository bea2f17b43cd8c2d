// The version of inrun, defined once in @inrun/store (the packages are released together).
export { VERSION } from '@inrun/store/core';
