output "function_name" {
  description = "The GCS-triggered function."
  value       = module.gcs_trigger.function_name
}

output "runtime_service_account_email" {
  description = "The function's identity. It holds no Google role; AWS trusts it by its unique ID."
  value       = module.gcs_trigger.runtime_service_account_email
}

output "runtime_service_account_unique_id" {
  description = "The unique ID the AWS role's trust policy requires as accounts.google.com:sub and accounts.google.com:aud."
  value       = module.gcs_trigger.runtime_service_account_unique_id
}

output "aws_role_arn" {
  description = "The role the function assumes with its ID token (WEB_IDENTITY_ROLE_ARN)."
  value       = module.mwaa_role.role_arn
}
