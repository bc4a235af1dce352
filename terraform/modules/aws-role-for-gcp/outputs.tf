output "role_arn" {
  description = "The role's ARN: the function's WEB_IDENTITY_ROLE_ARN ([airflow].web_identity_role_arn)."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "The role's name."
  value       = aws_iam_role.this.name
}

output "audience" {
  description = "The ID token audience the trust policy requires (accounts.google.com:oaud): the function's WEB_IDENTITY_AUDIENCE."
  value       = var.audience
}

output "function_environment" {
  description = "The environment variables the Cloud Run function needs for this role: WEB_IDENTITY_ROLE_ARN, WEB_IDENTITY_AUDIENCE, MWAA_ENVIRONMENT, MWAA_TRANSPORT and AWS_REGION (the role's region, where STS and MWAA are called). Merge it into the gcp-function module's environment_variables."
  value       = local.function_environment
}
