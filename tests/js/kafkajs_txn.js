// A kafkajs transactional producer: one transaction aborted, one committed (with the
// offsets of a group sent along), then a read_committed consumer (`readUncommitted: false`)
// in a group reads the topic. Prints {"read": [[partition, offset, value]...]} as JSON.
//   node kafkajs_txn.js <broker> <topic> <partitions> <group>
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, partitions, groupId] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'pinion-txn', brokers: [broker], logLevel: logLevel.ERROR });

async function produce(producer, prefix, commit, offsets) {
  const txn = await producer.transaction();
  const messages = [];
  for (let i = 0; i < 10; i++) {
    messages.push({ value: `${prefix}-${i}`, partition: i % Number(partitions) });
  }
  await txn.send({ topic, messages });
  if (offsets) {
    await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: offsets }] });
  }
  await (commit ? txn.commit() : txn.abort());
}

async function main() {
  const producer = kafka.producer({
    transactionalId: 'kafkajs-txn', idempotent: true, maxInFlightRequests: 1,
  });
  await producer.connect();
  await produce(producer, 'aborted', false, [{ partition: 0, offset: '3' }]);
  await produce(producer, 'committed', true, [{ partition: 0, offset: '7' }]);
  await producer.disconnect();

  const consumer = kafka.consumer({
    groupId: `${groupId}-reader`, readUncommitted: false, sessionTimeout: 10000, heartbeatInterval: 1000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen.length} records`)), 60000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push([partition, Number(message.offset), message.value.toString()]);
        if (seen.length >= 10) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  console.log(JSON.stringify({ read: seen }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
