/** Types of cluster-key-slot (the CRC16 hash slot function ioredis itself uses). */
declare module 'cluster-key-slot' {
  /** Hash slot (0..16383) of a key, honouring hash tags (redis.io cluster spec). */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
