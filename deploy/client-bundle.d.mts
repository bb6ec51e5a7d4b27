export declare function bundleClient(root?: string): Promise<{ script: string; style: string }>;
