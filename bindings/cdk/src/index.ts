export * from './registrator';
export * from './tags';
