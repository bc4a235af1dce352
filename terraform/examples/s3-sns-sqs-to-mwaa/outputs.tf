output "function_name" {
  description = "The Lambda function."
  value       = module.dag_trigger.function_name
}

output "handler" {
  description = "The handler the function runs (sqs_handler: SQS is its only trigger)."
  value       = module.dag_trigger.handler
}

output "log_group_name" {
  description = "Where the function logs (aws logs tail NAME --follow)."
  value       = module.dag_trigger.log_group_name
}

output "topic_arn" {
  description = "The topic the bucket publishes to: subscribe other consumers here rather than to the bucket."
  value       = aws_sns_topic.uploads.arn
}

output "queue_url" {
  description = "The queue the function consumes."
  value       = module.dag_trigger.trigger_queue_url
}

output "dead_letter_queue_url" {
  description = "Messages that failed max_receive_count times wait here; redrive them once the cause is fixed."
  value       = module.dag_trigger.trigger_dlq_url
}
