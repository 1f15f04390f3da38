#!/usr/bin/env node
'use strict';
const cdk = require('aws-cdk-lib');
const { ConsulTagChecker } = require('consul-lambda-sync-cdk');
const { ConsulLambdaStack } = require('../lib/stack');

const app = new cdk.App();
new ConsulLambdaStack(app, 'ConsulLambdaExample');
// Checks every function's Consul tags after the tag aspects (priority READONLY).
ConsulTagChecker.applyTo(app);
app.synth();
