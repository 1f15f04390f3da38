export * from './registrator';
export * from './tags';
export * from './mesh-access';
