variable "project" {
  type        = string
  description = "The project (ID) of the workload identity pool and its AWS provider. The service account may be in another project."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project ID."
  }
}

variable "pool_id" {
  type        = string
  description = "The workload identity pool's ID (4 to 32 of a-z, 0-9 and -; gcp- is reserved). A deleted pool keeps its ID for 30 days, so a destroyed and re-created pool needs another ID or an undelete."
  default     = "dag-trigger-aws"

  validation {
    condition     = can(regex("^[a-z0-9-]{4,32}$", var.pool_id)) && !startswith(var.pool_id, "gcp-")
    error_message = "pool_id must be 4 to 32 lowercase letters, digits and hyphens, not starting with gcp-."
  }
}

variable "provider_id" {
  type        = string
  description = "The AWS provider's ID in the pool (4 to 32 of a-z, 0-9 and -; gcp- is reserved)."
  default     = "dag-trigger-lambda"

  validation {
    condition     = can(regex("^[a-z0-9-]{4,32}$", var.provider_id)) && !startswith(var.provider_id, "gcp-")
    error_message = "provider_id must be 4 to 32 lowercase letters, digits and hyphens, not starting with gcp-."
  }
}

variable "aws_role_arn" {
  type        = string
  description = "The one AWS role admitted: the Lambda function's execution role (the aws-lambda module's role_arn output), arn:aws:iam::ACCOUNT:role/NAME. The provider trusts only its account, its attribute condition admits only sessions of this role (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION), and only they may impersonate the service account."

  validation {
    condition     = can(regex("^arn:aws:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$", var.aws_role_arn))
    error_message = "aws_role_arn must be an IAM role ARN in the aws partition, arn:aws:iam::ACCOUNT:role/NAME (Google STS verifies requests signed for the commercial AWS partition)."
  }
}

variable "service_account" {
  type        = string
  description = "The Google service account the AWS role impersonates, projects/PROJECT/serviceAccounts/EMAIL (google_service_account's name or id). It is what Composer, IAP and Airflow see; give it the roles Airflow needs (e.g. roles/composer.user) yourself."

  validation {
    condition     = can(regex("^projects/[^/]+/serviceAccounts/[^/@]+@[^/]+$", var.service_account))
    error_message = "service_account must be projects/PROJECT/serviceAccounts/EMAIL (google_service_account.NAME.name)."
  }
}

variable "auth_mode" {
  type        = string
  description = "How the function authenticates to Airflow as the service account (the code's AIRFLOW_AUTH); it decides what the account may do to itself. composer: nothing more (the impersonated access token is used as is). iap: roles/iam.serviceAccountOpenIdTokenCreator on itself, to mint IAP's ID token through IAM Credentials generateIdToken. iap_jwt: roles/iam.serviceAccountTokenCreator on itself, to sign IAP's JWT through IAM Credentials signJwt."
  default     = "composer"

  validation {
    condition     = contains(["composer", "iap", "iap_jwt"], var.auth_mode)
    error_message = "auth_mode must be composer, iap or iap_jwt: the Google auth modes."
  }
}
