output "function_name" {
  description = "The Lambda function, in the data account."
  value       = module.dag_trigger.function_name
}

output "function_role_arn" {
  description = "The function's execution role, in the data account: the one principal the invoker role trusts."
  value       = module.dag_trigger.role_arn
}

output "invoker_role_arn" {
  description = "The role in the Airflow account the function assumes (ASSUME_ROLE_ARN)."
  value       = aws_iam_role.invoker.arn
}

output "log_group_name" {
  description = "Where the function logs, in the data account."
  value       = module.dag_trigger.log_group_name
}

output "on_failure_queue_url" {
  description = "Events that failed every attempt land here, with the error."
  value       = module.dag_trigger.on_failure_queue_url
}
