// A CDK app in Go: the consul-lambda-sync registrator and a function it registers.
// ORDERS_INVOCATION_MODE=async makes the orders function's tag invalid: the tag
// checker reports one error naming the function, the tag and the fix.
package main

import (
	"os"

	"example.invalid/consul-lambda-sync/consullambdasynccdk"
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("ConsulLambdaGo"), nil)

	consullambdasynccdk.NewConsulLambdaRegistrator(stack, jsii.String("Registrator"), &consullambdasynccdk.ConsulLambdaRegistratorProps{
		ConsulHttpAddr:      jsii.String("https://consul.internal.example.com:8501"),
		TokenParameterName:  jsii.String("/consul/lambda-registrator/token"),
		CaCertParameterName: jsii.String("/consul/lambda-registrator/ca-cert"),
		Schedule:            awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(20))),
	})

	code := awslambda.Code_FromInline(jsii.String("exports.handler = async () => ({ statusCode: 200 });"))
	billing := awslambda.NewFunction(stack, jsii.String("Billing"), &awslambda.FunctionProps{
		FunctionName: jsii.String("billing"), Runtime: awslambda.Runtime_NODEJS_22_X(), Handler: jsii.String("index.handler"), Code: code,
	})
	consullambdasynccdk.ConsulTags_ApplyTo(billing, &consullambdasynccdk.ConsulTagOptions{Aliases: jsii.Strings("live")}, nil)
	// The alias its tags name (the registrator registers `billing-live` only for an alias that exists).
	billing.AddAlias(jsii.String("live"), nil)

	orders := awslambda.NewFunction(stack, jsii.String("Orders"), &awslambda.FunctionProps{
		FunctionName: jsii.String("orders"), Runtime: awslambda.Runtime_NODEJS_22_X(), Handler: jsii.String("index.handler"), Code: code,
	})
	mode := os.Getenv("ORDERS_INVOCATION_MODE")
	if mode == "" {
		mode = "ASYNCHRONOUS"
	}
	prefix := *consullambdasynccdk.ConsulTags_TAG_PREFIX()
	awscdk.Tags_Of(orders).Add(jsii.String(prefix+"enabled"), jsii.String("true"), nil)
	awscdk.Tags_Of(orders).Add(jsii.String(prefix+"invocation-mode"), jsii.String(mode), nil)

	consullambdasynccdk.ConsulTagChecker_ApplyTo(app, nil)
	app.Synth(nil)
}
