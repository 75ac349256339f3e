/** The version of @rune/server (kept equal to package.json by a unit test). */
export const SERVER_VERSION = '0.1.0';
