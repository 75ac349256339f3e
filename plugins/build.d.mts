/** Default plugin sources: plugins/builtin. */
export declare const DEFAULT_BUILTIN_DIR: string;
/** Default library directory: plugins/lib. */
export declare const DEFAULT_LIB_DIR: string;
/** A build problem in the sources. */
export declare class BuildError extends Error {}
/** Options of {@link build}. */
export interface BuildOptions {
  builtinDir?: string;
  libDir?: string;
}
/** Assembles every plugin into `outDir`; returns the plugin names. */
export declare function build(outDir: string, options?: BuildOptions): string[];
