output "function_name" {
  description = "The Lambda function's name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "The Lambda function's ARN."
  value       = aws_lambda_function.this.arn
}

output "handler" {
  description = "The handler the function runs: lambda_trigger.handler.handler, or lambda_trigger.handler.sqs_handler when SQS is its only trigger."
  value       = aws_lambda_function.this.handler
}

output "role_arn" {
  description = "The execution role's ARN: what a role in another account must trust (with assume_role_arn), and what a customer managed key's policy may name."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "The execution role's name."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "The function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "The function's CloudWatch log group's ARN."
  value       = aws_cloudwatch_log_group.this.arn
}

output "layer_arn" {
  description = "The dependencies layer version's ARN."
  value       = aws_lambda_layer_version.dependencies.arn
}

output "google_auth_layer_arn" {
  description = "The google-auth layer version's ARN (google_auth_layer_zip), or null."
  value       = one(aws_lambda_layer_version.google_auth[*].arn)
}

output "on_failure_destination_arn" {
  description = "Where asynchronous events that failed every attempt go (the queue the module created, or on_failure_destination.arn); null when SQS is the only trigger."
  value       = local.on_failure_enabled ? local.on_failure_destination : null
}

output "on_failure_queue_url" {
  description = "The URL of the on-failure queue the module created (to read and redrive failed events), or null."
  value       = one(aws_sqs_queue.on_failure[*].url)
}

output "trigger_queue_arn" {
  description = "The SQS trigger's queue ARN (created or given), or null."
  value       = local.sqs_enabled ? local.trigger_queue_arn : null
}

output "trigger_queue_url" {
  description = "The URL of the trigger queue the module created (attach an aws_sqs_queue_policy to it for senders such as an SNS topic), or null."
  value       = one(aws_sqs_queue.trigger[*].url)
}

output "trigger_dlq_arn" {
  description = "The ARN of the trigger queue's dead-letter queue the module created, or null."
  value       = one(aws_sqs_queue.trigger_dlq[*].arn)
}

output "trigger_dlq_url" {
  description = "The URL of the trigger queue's dead-letter queue the module created (redrive it once the cause is fixed), or null."
  value       = one(aws_sqs_queue.trigger_dlq[*].url)
}

output "eventbridge_rule_arn" {
  description = "The EventBridge rule's ARN when eventbridge_trigger is set, or null."
  value       = one(aws_cloudwatch_event_rule.s3[*].arn)
}
