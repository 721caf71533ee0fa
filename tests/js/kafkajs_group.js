// A kafkajs consumer in a group: reads until it has seen `want` records, commits (kafkajs
// commits resolved offsets on disconnect), and prints what it read as JSON.
//   node kafkajs_group.js <broker> <topic> <group> <want>
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, groupId, want] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'pinion-test', brokers: [broker], logLevel: logLevel.ERROR });

async function main() {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen.length} records`)), 60000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push([partition, Number(message.offset), message.value.toString()]);
        if (seen.length >= Number(want)) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
