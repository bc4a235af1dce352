output "pool_name" {
  description = "The workload identity pool, projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL."
  value       = google_iam_workload_identity_pool.this.name
}

output "provider_name" {
  description = "The AWS provider's full name, projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER: the function's GOOGLE_WORKLOAD_IDENTITY_PROVIDER ([airflow].workload_identity_provider)."
  value       = google_iam_workload_identity_pool_provider.aws.name
}

output "audience" {
  description = "The audience of the Google STS token exchange, //iam.googleapis.com/ + provider_name."
  value       = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.aws.name}"
}

output "principal_set" {
  description = "The principalSet of the role's sessions, which holds roles/iam.workloadIdentityUser on the service account (grant it other roles directly if the function should act without impersonation)."
  value       = google_service_account_iam_member.workload_identity_user.member
}

output "service_account_email" {
  description = "The impersonated service account: the function's GOOGLE_SERVICE_ACCOUNT ([airflow].service_account)."
  value       = local.service_account_email
}

output "assumed_role_arn" {
  description = "What attribute.aws_role must equal: arn:aws:sts::ACCOUNT:assumed-role/ROLE_NAME."
  value       = local.assumed_role_arn
}

output "credential_configuration" {
  description = "The credential configuration file `gcloud iam workload-identity-pools create-cred-config PROVIDER --aws --service-account EMAIL` writes, as JSON (no secret in it): for GOOGLE_CREDENTIAL_CONFIG ([airflow].google_credential_config) where a file suits better than the provider name, e.g. on ECS, MWAA or EC2. dag-trigger takes the AWS credentials and region from botocore, so credential_source's url and region_url are only read by other google-auth users."
  value = jsonencode({
    type                              = "external_account"
    audience                          = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.aws.name}"
    subject_token_type                = "urn:ietf:params:aws:token-type:aws4_request"
    token_url                         = "https://sts.googleapis.com/v1/token"
    service_account_impersonation_url = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${local.service_account_email}:generateAccessToken"
    credential_source = {
      environment_id                 = "aws1"
      region_url                     = "http://169.254.169.254/latest/meta-data/placement/availability-zone"
      url                            = "http://169.254.169.254/latest/meta-data/iam/security-credentials"
      regional_cred_verification_url = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    }
  })
}
