# S3 (AWS) -> Lambda (AWS) -> Workload Identity Federation -> Cloud Composer (Google Cloud). No key anywhere:
# the function signs an AWS GetCallerIdentity request with its execution role's credentials, Google STS verifies it
# with AWS and returns a federated token, and IAM Credentials exchanges that for the service account's access token.
#
# Who trusts whom:
#   the pool's AWS provider  trusts  the AWS account, and admits only sessions of the function's execution role;
#   the service account      lets    those sessions impersonate it (roles/iam.workloadIdentityUser);
#   Composer                 admits  the service account (roles/composer.user on the environment's project).

locals {
  composer_project = split("/", var.composer_environment)[1]

  # Workload Identity Federation (iam, sts, iamcredentials) and the Composer API the function reads the URL from.
  apis = [
    "composer.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
  ]

  # The optional filters of the route; the other settings are always set.
  route_filters = { for name, value in { TRIGGER_PREFIX = var.key_prefix, TRIGGER_SUFFIX = var.key_suffix } : name => value if value != null }
}

# ---------------------------------------------------------------------------------------------------------------------
# Google Cloud: the service account, its Composer access, and the federation that lets the function act as it
# ---------------------------------------------------------------------------------------------------------------------

# Left enabled on destroy: other things in the project may use them.
resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# The identity Composer sees. It has no key: only the function's role can act as it, through the pool.
resource "google_service_account" "trigger" {
  project      = var.project
  account_id   = var.service_account_id
  display_name = "dag-trigger on AWS Lambda ${var.function_name}"
  description  = "Impersonated by the Lambda function ${var.function_name} (AWS account ${var.aws_account_id}) through Workload Identity Federation, to trigger DAG runs in ${var.composer_environment}."
}

# Composer's web server admits holders of composer.environments.get, and the function reads the environment's Airflow
# URL through the Composer API. Environments have no IAM policy of their own: their project is the narrowest scope.
# (Inside Airflow the account also needs a role that may create DAG runs: Composer registers new accounts as Op.)
resource "google_project_iam_member" "composer_user" {
  project = local.composer_project
  role    = "roles/composer.user"
  member  = google_service_account.trigger.member
}

module "federation" {
  source = "../../modules/gcp-wif-for-aws"

  project         = var.project
  pool_id         = var.pool_id
  aws_role_arn    = module.dag_trigger.role_arn
  service_account = google_service_account.trigger.name
  auth_mode       = "composer"

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------------------------------------------------
# AWS: the function, triggered by the bucket
# ---------------------------------------------------------------------------------------------------------------------

module "dag_trigger" {
  source = "../../modules/aws-lambda"

  function_name = var.function_name
  # google-auth (and cryptography) for the token exchange: `make package` builds this layer.
  google_auth_layer_zip = abspath("${path.module}/../../../build/dag-trigger-lambda-google-layer.zip")

  # The function needs no AWS permission for the exchange: it only signs GetCallerIdentity, which IAM never denies,
  # and Google STS sends it to AWS. Its role keeps the module's logs, X-Ray and on-failure permissions only.
  environment_variables = merge(local.route_filters, {
    COMPOSER_ENVIRONMENT              = var.composer_environment
    AIRFLOW_AUTH                      = "composer"
    GOOGLE_WORKLOAD_IDENTITY_PROVIDER = module.federation.provider_name
    GOOGLE_SERVICE_ACCOUNT            = google_service_account.trigger.email
    DAG_ID                            = var.dag_id
    TRIGGER_BUCKET                    = var.bucket
  })

  # Replaces the bucket's whole notification configuration (one per bucket).
  s3_trigger = {
    bucket        = var.bucket
    bucket_owner  = var.aws_account_id
    filter_prefix = var.key_prefix
    filter_suffix = var.key_suffix
  }
}
