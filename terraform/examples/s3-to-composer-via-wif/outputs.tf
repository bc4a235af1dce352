output "function_name" {
  description = "The Lambda function."
  value       = module.dag_trigger.function_name
}

output "function_role_arn" {
  description = "The function's execution role: the one AWS role the workload identity provider admits."
  value       = module.dag_trigger.role_arn
}

output "log_group_name" {
  description = "Where the function logs (aws logs tail NAME --follow)."
  value       = module.dag_trigger.log_group_name
}

output "on_failure_queue_url" {
  description = "Events that failed every attempt land here, with the error."
  value       = module.dag_trigger.on_failure_queue_url
}

output "service_account_email" {
  description = "The Google service account the function acts as (GOOGLE_SERVICE_ACCOUNT): Composer and Airflow see it."
  value       = google_service_account.trigger.email
}

output "workload_identity_provider" {
  description = "The workload identity provider (GOOGLE_WORKLOAD_IDENTITY_PROVIDER)."
  value       = module.federation.provider_name
}

output "credential_configuration" {
  description = "The same federation as a credential configuration file (what gcloud iam workload-identity-pools create-cred-config --aws writes), e.g. for dag-trigger doctor on an EC2 instance or ECS task of the same role: terraform output -raw credential_configuration > cred.json."
  value       = module.federation.credential_configuration
}
