// The example app with a mistake: `invocation-mode=async` (the tag wants
// SYNCHRONOUS or ASYNCHRONOUS). `cdk synth --app 'node bad-tag.mjs'` fails
// with one error naming the function, the tag, the value and the fix.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cdk = require('aws-cdk-lib');
const { ConsulTagChecker } = require('consul-lambda-sync-cdk');
const { ConsulLambdaStack } = require('./lib/stack.js');

const app = new cdk.App();
new ConsulLambdaStack(app, 'ConsulLambdaExample', { ordersInvocationMode: 'async' });
ConsulTagChecker.applyTo(app);
app.synth();
