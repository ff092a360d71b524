export const ABI_VERSION: u32 = 0;
