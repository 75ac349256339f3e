/** The repository root. */
export declare const REPO_ROOT: string;
/** Directories (relative to the repository root) whose files end up in, or next to, the CLI. */
export declare const BUILD_INPUT_DIRS: readonly string[];
/** Packages the CLI bundles or loads at run time from their own dist/. */
export declare const DEPENDENCY_PACKAGES: readonly string[];
/** Every input file (repository-relative, `/`-separated, sorted). */
export declare function listBuildInputs(root?: string): string[];
/** sha256 of each input file, and one sha256 over all of them. */
export declare function hashBuildInputs(root?: string): {
  sha256: string;
  files: Record<string, string>;
};
/** Dependency packages whose dist/ is older than their newest source file. */
export declare function staleDependencies(root?: string): string[];
