export declare const BUNDLE_BANNER: string;
export declare function bundleDefine(root?: string): Promise<Record<string, string>>;
