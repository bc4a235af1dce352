output "function_name" {
  description = "The Lambda function (aws lambda invoke, or its logs)."
  value       = module.dag_trigger.function_name
}

output "role_arn" {
  description = "The function's execution role."
  value       = module.dag_trigger.role_arn
}

output "log_group_name" {
  description = "Where the function logs (aws logs tail NAME --follow)."
  value       = module.dag_trigger.log_group_name
}

output "on_failure_queue_url" {
  description = "Events that failed every attempt land here, with the error, to be redriven once the cause is fixed."
  value       = module.dag_trigger.on_failure_queue_url
}
